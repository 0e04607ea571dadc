// Definitions for the float functions glibc's math.h declares with a "__" prefix but libm does not
// export. CUDA kernels call the same names as fast-math intrinsics (__expf, __logf, __sinf, ...);
// in the emulation build they are the accurate functions.
#include <math.h>

extern "C" {
float __expf(float x) noexcept { return expf(x); }
float __exp10f(float x) noexcept { return exp10f(x); }
float __logf(float x) noexcept { return logf(x); }
float __log2f(float x) noexcept { return log2f(x); }
float __log10f(float x) noexcept { return log10f(x); }
float __sinf(float x) noexcept { return sinf(x); }
float __cosf(float x) noexcept { return cosf(x); }
float __tanf(float x) noexcept { return tanf(x); }
float __powf(float x, float y) noexcept { return powf(x, y); }
void __sincosf(float x, float* s, float* c) noexcept { sincosf(x, s, c); }
}
