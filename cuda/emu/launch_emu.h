#pragma once
// The emulation twin of the kernel launcher (cuda/launch.cuh includes this under
// TESSERA_CUDA_EMULATION). Same signature as the CUDA one, and the same shared-memory opt-in
// (cuda/launch_checks.h):
//
//   tessera::cuda::launch_kernel(name, kernel, grid, block, smem_bytes, stream, args...)
//
// The arguments are converted to the kernel's parameter types once, as a call would; each
// emulated thread then calls the kernel with its own copies (parameters are per-thread values
// on the device too). The launch is queued on the stream with its parameters copied
// (stream_model.h): on the legacy stream (0) it runs before this returns, on any other stream when
// the stream's work is run (a synchronisation). The launching call throws tessera::Error naming
// the kernel for a bad configuration, a pointer argument outside device memory, or a stream of
// another device than the current one; what happens while the kernel runs (a barrier not reached
// by all threads, a schedule-dependent result, a shared-memory race, see grid_launch.h) is thrown
// here on the legacy stream, and otherwise reported by the synchronisation that ran it.
#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda/emu/emulator.h"
#include "cuda/emu/grid_launch.h"
#include "cuda/emu/stream_model.h"
#include "cuda/launch_checks.h"

namespace tessera::cuda {

namespace emu_detail {

template <typename Tuple, size_t... I>
void collect_pointer_args(const Tuple& t, std::index_sequence<I...>,
                          std::vector<::tessera::emu::PointerArgument>& out, bool& aggregate) {
  auto one = [&](int index, const auto& v) {
    using V = std::decay_t<decltype(v)>;
    if constexpr (std::is_pointer_v<V>) {
      // The pointee type tells the schedule check how to compare what the kernel wrote there
      // (floats within rounding: atomicAdd order changes it), whatever the allocation's label.
      using E = std::remove_cv_t<std::remove_pointer_t<V>>;
      using ::tessera::emu::ElementKind;
      constexpr ElementKind kind = std::is_same_v<E, float>     ? ElementKind::F32
                                   : std::is_same_v<E, double>  ? ElementKind::F64
                                   : std::is_same_v<E, int32_t> ? ElementKind::I32
                                   : std::is_same_v<E, int64_t> ? ElementKind::I64
                                                                : ElementKind::Bytes;
      out.push_back(::tessera::emu::PointerArgument{index, static_cast<const void*>(v), kind});
    } else if constexpr (std::is_class_v<V> || std::is_union_v<V>) {
      aggregate = true;
    }
  };
  (one(static_cast<int>(I), std::get<I>(t)), ...);
}

}  // namespace emu_detail

namespace emu_detail {

// The launch as the runtime sees it, without the launcher's shared-memory opt-in (tests use it to
// reach the emulated runtime's own launch rules).
template <typename... Params, typename... Args>
void queue_launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block,
                  size_t smem_bytes, cudaStream_t stream, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args),
                "launch_kernel: the number of arguments does not match the kernel's parameters");
  using Tuple = std::tuple<std::decay_t<Params>...>;
  struct Closure {
    void (*kernel)(Params...);
    Tuple params;  // copied at the launch: the caller's arguments may change before it runs
  };
  auto closure =
      std::make_shared<const Closure>(Closure{kernel, Tuple(std::forward<Args>(args)...)});

  ::tessera::emu::LaunchRequest request;
  request.kernel = name;
  request.kernel_address = reinterpret_cast<const void*>(kernel);
  request.grid = grid;
  request.block = block;
  request.dynamic_smem = smem_bytes;
  request.body.invoke = [](const void* c) {
    const auto* cl = static_cast<const Closure*>(c);
    std::apply(cl->kernel, cl->params);  // copies: every thread gets its own parameters
  };
  request.body.closure = closure.get();
  emu_detail::collect_pointer_args(closure->params, std::index_sequence_for<Params...>{},
                                   request.pointer_args, request.has_aggregate_args);
  request.owner = std::move(closure);
  ::tessera::emu::launch_on_stream(stream, std::move(request));
}

}  // namespace emu_detail

template <typename... Params, typename... Args>
void launch_kernel(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block,
                   size_t smem_bytes, cudaStream_t stream, Args&&... args) {
  // The CUDA launcher's shared-memory opt-in, against the emulated runtime's rules.
  detail::opt_in_shared_memory(name, reinterpret_cast<const void*>(kernel), grid, block,
                               smem_bytes);
  emu_detail::queue_launch(name, kernel, grid, block, smem_bytes, stream,
                           std::forward<Args>(args)...);
}

}  // namespace tessera::cuda
// TESSERA_LAUNCH itself is defined by cuda/launch.cuh (the same macro for both builds).
