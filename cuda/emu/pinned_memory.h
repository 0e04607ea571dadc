#pragma once
// Pinned (page-locked) host memory for the emulated runtime: cudaHostAlloc/cudaFreeHost, and the
// guard on a pending device-to-host copy into it (cuda/emu/README.md, "Runtime").
//
// A cudaMemcpyAsync from the device into pinned memory completes only when its stream runs it.
// Until then the destination holds a poison pattern (0xFF bytes: NaN floats, -1 integers) and the
// pages it covers are protected (mprotect PROT_NONE); a host access to the destination range is a
// read (or write) before a synchronisation that covers the copy, and a SIGSEGV handler reports
//   tessera CUDA emulator: host read of pinned memory [begin, end) (N bytes) written by a
//   cudaMemcpyAsync on stream #S (device D) that has not been synchronised ...
// and aborts. Allocations are page-aligned and page-padded, so protected pages hold nothing but
// pinned bytes. An access to another part of a protected page (a neighbour of the destination)
// unprotects that page and goes on: that copy's bytes on that page lose the guard, keeping the
// poison. Under AddressSanitizer the handler is installed the same way (ASan allows a user SIGSEGV
// handler by default: allow_user_segv_handler=1).
#include <cstddef>
#include <string>

namespace tessera::emu::detail {

// nullptr when the host is out of memory.
void* pinned_alloc(size_t bytes);
// False when `p` is not the start of a pinned allocation.
bool pinned_free(void* p);
// True when [p, p + bytes) lies inside one pinned allocation.
bool is_pinned_range(const void* p, size_t bytes);
size_t pinned_allocation_count();

// Poisons and protects [dst, dst + bytes) for a queued device-to-host copy; returns a token for
// finish_pending_write (-1 when the guard table is full: poisoned but unguarded).
int begin_pending_write(void* dst, size_t bytes, const std::string& stream_label);
// The copy's turn: lifts the guard and copies src into the destination.
void finish_pending_write(int token, void* dst, const void* src, size_t bytes);

}  // namespace tessera::emu::detail
