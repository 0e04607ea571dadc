#include "pipelines/behaviour/distributed_scoring.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <numeric>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/text_split.h"

namespace tessera::behaviour {

namespace {

std::vector<int64_t> allgather_counts(dist::ProcessGroup& g, int64_t n) {
  std::vector<int64_t> all(static_cast<size_t>(g.world()));
  g.allgather(&n, sizeof(n), all.data());
  return all;
}

// An error as a string that crosses ranks: kind, line, column, file, message (NUL-separated);
// "" when there is none.
std::string encode_error(std::exception_ptr e) {
  if (!e) return "";
  ErrorKind kind = ErrorKind::Internal;
  ErrorLocation at;
  std::string message = "unknown error";
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    kind = err.kind();
    at = err.location();
    message = err.what();
  } catch (const std::bad_alloc&) {
    message = "out of memory";
  } catch (const std::exception& err) {
    message = err.what();
  }
  std::string s = std::to_string(static_cast<int>(kind)) + '\0' + std::to_string(at.line) + '\0' +
                  std::to_string(at.column) + '\0' + at.file + '\0' + message;
  return s;
}

[[noreturn]] void throw_decoded(const std::string& s, int rank) {
  std::vector<std::string> parts;
  size_t from = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t nul = s.find('\0', from);
    parts.push_back(s.substr(from, nul - from));
    from = nul + 1;
  }
  const auto kind = static_cast<ErrorKind>(std::stoi(parts[0]));
  ErrorLocation at{parts[3], std::stoll(parts[1]), std::stoll(parts[2]), ""};
  std::string message = s.substr(from);
  if (rank != 0) message = "MPI rank " + std::to_string(rank) + ": " + message;
  throw Error(kind, message, at);
}

}  // namespace

FileSpec text_input_part(dist::ProcessGroup& g, const FileSpec& file, bool header) {
  FileSpec part = file;
  // Every rank decides alike (the same file), so no rank waits for a collective another skips.
  if (is_gzip_file(file.path)) {
    if (g.rank() != 0) part.range = ByteRange{0, 0, 1};
    return part;
  }
  part.range = text_part(file.path, file.skip_lines, header, g.rank(), g.world());
  const std::vector<int64_t> lines =
      allgather_counts(g, count_newlines(file.path, part.range.begin, part.range.end));
  part.range.first_line = 1 + std::accumulate(lines.begin(), lines.begin() + g.rank(), int64_t{0});
  return part;
}

RowPart row_part(const dist::ProcessGroup& g, int64_t rows) {
  auto at = [&](int r) {
    return static_cast<int64_t>((static_cast<__int128>(rows) * r) / g.world());
  };
  return {at(g.rank()), at(g.rank() + 1) - at(g.rank())};
}

bool all_succeeded(dist::ProcessGroup& g, std::exception_ptr local) {
  const std::vector<std::string> errors = dist::allgather_strings(g, encode_error(local));
  for (size_t r = 0; r < errors.size(); ++r) {
    if (errors[r].empty()) continue;
    if (g.rank() == 0) throw_decoded(errors[r], static_cast<int>(r));
    return false;
  }
  return true;
}

void await_job_end(dist::ProcessGroup& g) {
  // Rank 0 reports the error and its exit ends the job (MPI_Abort in the CLI). Waiting for it
  // here, rather than returning into MPI_Finalize, keeps a rank from ending normally while the
  // job is being aborted (Open MPI then reported a crash, exit 139, instead of the error's code).
  g.barrier();
  TESSERA_THROW(Internal, "rank 0 went on after a failed distributed scoring");
}

int64_t sum_over_ranks(dist::ProcessGroup& g, int64_t n) {
  const std::vector<int64_t> all = allgather_counts(g, n);
  return std::accumulate(all.begin(), all.end(), int64_t{0});
}

BadRowReport merge_bad_rows(dist::ProcessGroup& g, const BadRowReport& mine) {
  std::string s = std::to_string(mine.skipped);
  for (const std::string& reason : mine.first_reasons) s += '\0' + reason;
  BadRowReport all;
  for (const std::string& theirs : dist::allgather_strings(g, s)) {
    BadRowReport r;
    size_t from = theirs.find('\0');
    r.skipped = std::stoll(theirs.substr(0, from));
    while (from != std::string::npos) {
      const size_t nul = theirs.find('\0', from + 1);
      r.first_reasons.push_back(theirs.substr(from + 1, nul - from - 1));
      from = nul;
    }
    all.merge(r);
  }
  return all;
}

EncodeStats merge_encode_stats(dist::ProcessGroup& g, const EncodeStats& mine) {
  // Counts as doubles: exact below 2^53, whatever the order of the sum.
  std::vector<double> v{static_cast<double>(mine.rows)};
  for (const int64_t n : mine.oov) v.push_back(static_cast<double>(n));
  g.allreduce_sum(v.data(), static_cast<int64_t>(v.size()));
  EncodeStats all = mine;
  all.rows = static_cast<int64_t>(v[0]);
  for (size_t i = 0; i < all.oov.size(); ++i) all.oov[i] = static_cast<int64_t>(v[i + 1]);
  return all;
}

namespace {

// Rank r's `count` scores of one label, broadcast from it in pieces of up to 1 Mi scores (4 MiB),
// appended to rank 0's metrics.
void gather_label(dist::ProcessGroup& g, BinaryMetrics& m, int r, Label label, int64_t count) {
  constexpr int64_t kPiece = int64_t{1} << 20;
  std::vector<float> piece;
  for (int64_t at = 0; at < count; at += kPiece) {
    const int64_t n = std::min(kPiece, count - at);
    piece.resize(static_cast<size_t>(n));
    if (g.rank() == r)
      m.scores(label).copy_out(static_cast<size_t>(at), static_cast<size_t>(n), piece.data());
    g.broadcast(piece.data(), n * static_cast<int64_t>(sizeof(float)), r);
    if (g.rank() == 0) m.merge_scores(label, piece.data(), static_cast<size_t>(n));
  }
}

}  // namespace

void gather_scores(dist::ProcessGroup& g, BinaryMetrics& m) {
  for (int r = 1; r < g.world(); ++r) {
    // Rank r's sums (the same number of doubles on every rank), then its scores by label.
    std::vector<double> sums = m.sums().to_doubles();
    g.broadcast(sums.data(), static_cast<int64_t>(sums.size() * sizeof(double)), r);
    const BinarySums theirs = BinarySums::from_doubles(sums);
    if (g.rank() == 0) m.merge_sums(theirs);
    gather_label(g, m, r, Label::Positive, theirs.positives);
    gather_label(g, m, r, Label::Negative, theirs.count - theirs.positives);
  }
}

// ---- OutputParts --------------------------------------------------------------------------------

OutputParts::OutputParts(dist::ProcessGroup& g, const std::string& output)
    : g_(g), output_(output) {
  if (g.rank() == 0)
    token_ = std::to_string(::getpid()) + "-" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  dist::broadcast_string(g, token_, 0);
}

OutputParts::~OutputParts() {
  if (fd_ >= 0) ::close(fd_);
  ::unlink(part_path(g_.rank()).c_str());
}

std::string OutputParts::part_path(int rank) const {
  return output_ + ".part" + std::to_string(rank) + "." + token_ + ".tmp";
}

void OutputParts::write(const std::string& bytes) {
  pending_ += bytes;
  if (pending_.size() >= (size_t{1} << 20)) flush();
}

// Writes the pending bytes, creating this rank's part file on the first call.
void OutputParts::flush() {
  const std::string path = part_path(g_.rank());
  if (fd_ < 0) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) TESSERA_THROW(Io, "cannot create '" << path << "': " << std::strerror(errno));
  }
  for (size_t done = 0; done < pending_.size();) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) TESSERA_THROW(Io, "cannot write '" << path << "': " << std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  pending_.clear();
}

void OutputParts::close() {
  flush();  // also creates an empty part
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0)
    TESSERA_THROW(Io, "cannot write '" << part_path(g_.rank()) << "': " << std::strerror(errno));
}

// Rank 0: `head`, then every part in rank order, into the output (temporary file, fsync, rename).
void OutputParts::write_output(const std::string& head) const {
  AtomicFileWriter out(output_);
  out.write(head);
  std::vector<char> buf(size_t{1} << 20);
  for (int r = 0; r < g_.world(); ++r) {
    const std::string path = part_path(r);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      TESSERA_THROW(Io, "cannot open '" << path << "' (rank " << r << "'s part of the output; "
                                        << "is " << output_ << "'s directory shared by every "
                                        << "rank?): " << std::strerror(errno));
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        TESSERA_THROW(Io, "error reading '" << path << "': " << std::strerror(err));
      }
      if (n == 0) break;
      out.write(buf.data(), static_cast<size_t>(n));
    }
    ::close(fd);
  }
  out.commit();
}

bool OutputParts::concatenate(const std::string& head) {
  std::exception_ptr failed;
  if (g_.rank() == 0) {
    try {
      write_output(head);
    } catch (...) {
      failed = std::current_exception();
    }
  }
  return all_succeeded(g_, failed);
}

}  // namespace tessera::behaviour
