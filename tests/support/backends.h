#pragma once
// Which backends the parity and gradient-check suites run against the host backend (the
// specification), and how a test case gets one or skips with the reason.
//
//   parity_backend_specs()  "cuda" always, then every spec in TESSERA_PARITY_BACKENDS
//                           (comma separated, e.g. "cuda-emu"), so the emulation build adds itself.
//   TESSERA_TEST_BACKEND_OR_SKIP(var, spec)
//                           in a TEST body: Backend* var, or a GPU skip with the reason
//                           ("cuda" without a usable GPU: tests/support/skips.h), or a FAIL (a
//                           spec someone named explicitly in TESSERA_PARITY_BACKENDS that cannot
//                           be built).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "tests/support/gpu_skips.h"

namespace tessera::test {

// The environment variable through which a build adds backends to the parity suites.
inline constexpr const char* kParityBackendsEnv = "TESSERA_PARITY_BACKENDS";

inline std::string trim_spaces(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The non-reference backends to compare with the host backend: "cuda" first, then the extra specs
// from TESSERA_PARITY_BACKENDS in order, trimmed, without empties or duplicates.
inline std::vector<std::string> parity_backend_specs() {
  std::vector<std::string> specs{"cuda"};
  if (const char* env = std::getenv(kParityBackendsEnv)) {
    std::string rest = env;
    size_t start = 0;
    while (start <= rest.size()) {
      size_t comma = rest.find(',', start);
      if (comma == std::string::npos) comma = rest.size();
      std::string spec = trim_spaces(rest.substr(start, comma - start));
      bool seen = false;
      for (const std::string& s : specs) seen = seen || s == spec;
      if (!spec.empty() && !seen) specs.push_back(spec);
      start = comma + 1;
    }
  }
  return specs;
}

// A spec as a GoogleTest parameter name (letters, digits, '_'): "cuda-emu" -> "cuda_emu".
inline std::string spec_param_name(const std::string& spec) {
  std::string out;
  for (char c : spec) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '_';
  }
  return out.empty() ? "empty" : out;
}

// Whether the spec came from TESSERA_PARITY_BACKENDS (asked for by name, so it must work).
inline bool spec_requested_explicitly(const std::string& spec) {
  const char* env = std::getenv(kParityBackendsEnv);
  if (!env) return false;
  std::string all = std::string(",") + env + ",";
  std::string rest;
  for (char c : all)
    if (c != ' ' && c != '\t') rest += c;
  return rest.find("," + spec + ",") != std::string::npos;
}

struct BackendSlot {
  std::unique_ptr<Backend> backend;  // null when the spec cannot be used
  std::string why_not;               // the reason, for the skip or failure message
  bool is_failure = false;           // true: report a failure instead of a skip
};

// The backend for `spec`, built once per process: creating a CUDA context costs a noticeable
// fraction of a second and every parameterised case asks for it again.
//   "cpu"/"host"    the host backend (always there).
//   "cuda"          skip (not fail) when tessera::cuda_available() says no, with its reason.
//   anything else   (and "cuda" when a GPU is present): a construction error is a failure,
//                   because the build or the environment asked for that backend by name.
inline const BackendSlot& acquire_backend(const std::string& spec) {
  // Deliberately leaked: destroying device backends during static destruction can run after the
  // CUDA runtime has been torn down.
  static auto* cache = new std::map<std::string, BackendSlot>();
  auto it = cache->find(spec);
  if (it != cache->end()) return it->second;
  BackendSlot slot;
  std::string why;
  if (spec == "cuda" && !cuda_available(&why) && !spec_requested_explicitly(spec)) {
    slot.why_not = "no usable CUDA device, so backend 'cuda' is not tested: " + why;
  } else {
    try {
      slot.backend = make_backend(spec);
    } catch (const Error& e) {
      slot.why_not = "backend '" + spec + "' was asked for but could not be created (" +
                     error_kind_name(e.kind()) + "): " + e.what();
      slot.is_failure = true;
    }
  }
  return cache->emplace(spec, std::move(slot)).first->second;
}

// The reference: the host backend, one per process.
inline Backend& reference_backend() {
  return *acquire_backend("cpu").backend;
}

}  // namespace tessera::test

// In a TEST / TEST_P body: declares `Backend* var` for `spec`, or ends the test with a skip (the
// backend is legitimately absent) or a failure (it was asked for and is broken).
#define TESSERA_TEST_BACKEND_OR_SKIP(var, spec)                                             \
  const ::tessera::test::BackendSlot& var##_slot_ = ::tessera::test::acquire_backend(spec); \
  if (!var##_slot_.backend) {                                                               \
    if (var##_slot_.is_failure) FAIL() << var##_slot_.why_not;                              \
    TESSERA_NEEDS_GPU_SKIP(var##_slot_.why_not);                                            \
  }                                                                                         \
  ::tessera::Backend* var = var##_slot_.backend.get()
