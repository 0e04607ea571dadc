#pragma once
// CUDA's built-in vector types for the emulation build (g++), laid out and aligned as nvcc does
// (float4/int4 16 bytes, float2/int2 8 bytes), so a kernel's reinterpret_cast<const float4*>
// vector loads mean the same thing here and an unaligned one is caught by UBSan.
#include <cstdint>

// Global namespace on purpose: kernel sources spell these unqualified, as under nvcc.

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
};

#define TESSERA_EMU_VEC1(name, T, al) \
  struct alignas(al) name {           \
    T x;                              \
  };
#define TESSERA_EMU_VEC2(name, T, al) \
  struct alignas(al) name {           \
    T x, y;                           \
  };
#define TESSERA_EMU_VEC3(name, T) \
  struct name {                   \
    T x, y, z;                    \
  };
#define TESSERA_EMU_VEC4(name, T, al) \
  struct alignas(al) name {           \
    T x, y, z, w;                     \
  };

TESSERA_EMU_VEC1(float1, float, 4)
TESSERA_EMU_VEC2(float2, float, 8)
TESSERA_EMU_VEC3(float3, float)
TESSERA_EMU_VEC4(float4, float, 16)
TESSERA_EMU_VEC1(int1, int, 4)
TESSERA_EMU_VEC2(int2, int, 8)
TESSERA_EMU_VEC3(int3, int)
TESSERA_EMU_VEC4(int4, int, 16)
TESSERA_EMU_VEC1(uint1, unsigned int, 4)
TESSERA_EMU_VEC2(uint2, unsigned int, 8)
TESSERA_EMU_VEC3(uint3, unsigned int)
TESSERA_EMU_VEC4(uint4, unsigned int, 16)
TESSERA_EMU_VEC2(double2, double, 16)
TESSERA_EMU_VEC2(longlong2, long long, 16)
TESSERA_EMU_VEC2(ulonglong2, unsigned long long, 16)
TESSERA_EMU_VEC2(short2, short, 4)
TESSERA_EMU_VEC4(short4, short, 8)
TESSERA_EMU_VEC4(char4, signed char, 4)
TESSERA_EMU_VEC4(uchar4, unsigned char, 4)

#undef TESSERA_EMU_VEC1
#undef TESSERA_EMU_VEC2
#undef TESSERA_EMU_VEC3
#undef TESSERA_EMU_VEC4

static_assert(sizeof(float4) == 16 && alignof(float4) == 16, "float4 must match nvcc's layout");
static_assert(sizeof(int4) == 16 && alignof(int4) == 16, "int4 must match nvcc's layout");
static_assert(sizeof(float2) == 8 && alignof(float2) == 8, "float2 must match nvcc's layout");
static_assert(sizeof(float3) == 12, "float3 must match nvcc's layout");

constexpr float1 make_float1(float x) { return {x}; }
constexpr float2 make_float2(float x, float y) { return {x, y}; }
constexpr float3 make_float3(float x, float y, float z) { return {x, y, z}; }
constexpr float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
constexpr int2 make_int2(int x, int y) { return {x, y}; }
constexpr int3 make_int3(int x, int y, int z) { return {x, y, z}; }
constexpr int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
constexpr uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
constexpr uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
constexpr uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
constexpr double2 make_double2(double x, double y) { return {x, y}; }
constexpr longlong2 make_longlong2(long long x, long long y) { return {x, y}; }
constexpr ulonglong2 make_ulonglong2(unsigned long long x, unsigned long long y) { return {x, y}; }
constexpr short2 make_short2(short x, short y) { return {x, y}; }
constexpr char4 make_char4(signed char x, signed char y, signed char z, signed char w) {
  return {x, y, z, w};
}
constexpr uchar4 make_uchar4(unsigned char x, unsigned char y, unsigned char z, unsigned char w) {
  return {x, y, z, w};
}
