#include "host/core/model_file_checks.h"

namespace tessera {

std::vector<std::pair<std::string, Tensor>> checked_model_tensors(
    const Archive& a, const std::string& path,
    const std::vector<std::pair<std::string, Shape>>& shapes) {
  for (const auto& [name, shape] : shapes) {
    auto it = a.tensors.find(name);
    if (it == a.tensors.end())
      TESSERA_THROW(Io, path << ": model lacks the tensor '" << name << "'");
    if (it->second.dtype() != DType::F32 || it->second.shape() != shape)
      TESSERA_THROW(Io, path << ": model tensor '" << name << "' is " << it->second.describe()
                             << ", its header implies f32" << shape_str(shape));
  }
  check_finite(a.tensors, path);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, t] : a.tensors) out.emplace_back(name, t);
  return out;
}

}  // namespace tessera
