// Placeholder translation unit so the library exists before the pipelines land.
namespace tessera {}
