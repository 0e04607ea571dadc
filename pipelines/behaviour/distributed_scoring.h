#pragma once
// evaluate and predict of a behaviour model on every rank of `mpirun -np N tessera ...`
// (docs/distributed-scoring.md): each rank scores its part of the input, and the parts are put
// back together in input order so that the result is the one-process command's.
//
// Every function here is collective: every rank of the group calls it, in the same order.
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "host/data/preprocessor.h"
#include "host/data/row_parser.h"
#include "host/data/schema.h"
#include "host/dist/process_group.h"
#include "host/metrics/metrics.h"

namespace tessera::behaviour {

// A rank's part of a text input (CSV/TSV, Criteo, libSVM): `file` with its byte range and first
// line (host/data/text_split.h). A gzip-compressed file cannot be cut: rank 0 reads all of it and
// the other ranks' parts are empty.
FileSpec text_input_part(dist::ProcessGroup& g, const FileSpec& file, bool header);

// A rank's part of the `rows` rows of a prepared split, in file order: rows [first, first + rows).
struct RowPart {
  int64_t first = 0, rows = 0;
};
RowPart row_part(const dist::ProcessGroup& g, int64_t rows);

// After each rank's own work, which failed with `local` (null: it did not): true when every rank
// succeeded. Otherwise rank 0 throws the error of the first rank (in rank order) that failed,
// with its kind and place, and the other ranks return false: they clean up (their part files)
// and call await_job_end.
bool all_succeeded(dist::ProcessGroup& g, std::exception_ptr local);
// Ranks other than 0 after a failure: wait in a barrier rank 0 never enters, until the CLI ends
// the job for rank 0's error (MPI_Abort). Throws (Internal) if rank 0 enters it after all.
[[noreturn]] void await_job_end(dist::ProcessGroup& g);

// Sums of per-rank counts, and the ranks' bad-row reports merged in rank order (the first
// reasons of the lowest ranks, as one process reading the file front to back would keep them).
int64_t sum_over_ranks(dist::ProcessGroup& g, int64_t n);
BadRowReport merge_bad_rows(dist::ProcessGroup& g, const BadRowReport& mine);
EncodeStats merge_encode_stats(dist::ProcessGroup& g, const EncodeStats& mine);

// Every rank's metrics merged into rank 0's, in rank order (rank 0's end up over all rows; the
// others' are left as they were): each rank's sums, then its scores by label in pieces of up to
// 1 Mi scores broadcast from it, 4 bytes a row. AUC over all rows is exact (the same sets of
// scores as one process holds); logloss and calibration sum per-rank partial sums, so they may
// differ from one process's in the last bits.
void gather_scores(dist::ProcessGroup& g, BinaryMetrics& m);

// predict's output under mpirun: each rank writes its part of OUTPUT to a temporary file in
// OUTPUT's directory (named from a token rank 0 draws), then rank 0 writes `head` and the parts
// in rank order into OUTPUT atomically (host/core/atomic_file.h). Every part file is removed on
// every path (the destructor), including when a rank fails.
class OutputParts {
 public:
  OutputParts(dist::ProcessGroup& g, const std::string& output);
  ~OutputParts();
  OutputParts(const OutputParts&) = delete;
  OutputParts& operator=(const OutputParts&) = delete;

  // This rank's part: appended to its temporary file.
  void write(const std::string& bytes);
  // Closes this rank's part (an Io error if it could not be written whole).
  void close();
  // Collective, after every rank closed its part (all_succeeded): rank 0 concatenates; true
  // when it succeeded (rank 0 throws its error, the others return false).
  bool concatenate(const std::string& head);

 private:
  std::string part_path(int rank) const;
  void flush();
  void write_output(const std::string& head) const;
  dist::ProcessGroup& g_;
  std::string output_, token_;
  int fd_ = -1;
  std::string pending_;
};

}  // namespace tessera::behaviour
