#pragma once
// Which engine sources this binary was built from: the SHA-256 over every source file under
// host/, cuda/, embeddings/ and pipelines/ (path and content), computed at build time by
// cmake/source_id.cmake. The stage cache keys every stage on it.
namespace tessera {

const char* build_source_id();  // 64 lowercase hex digits

}  // namespace tessera
