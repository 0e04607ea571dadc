// Linked into every libFuzzer target (TESSERA_FUZZ=ON): the sanitizer settings the targets are
// meant to run with, built in, so a target run by hand behaves as under tools/fuzz.sh. Options
// given in UBSAN_OPTIONS still win.
//   halt_on_error=1    every UBSan report stops the run (pointer-overflow is the one check built
//                      recoverable, for the suppression below; everything else aborts anyway)
//   suppressions=...   tests/fuzz/ubsan.supp: one third-party defect, named and explained there
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" TESSERA_FUZZ_DIR "/ubsan.supp";
}
