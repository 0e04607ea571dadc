#include "host/model/parameter_ops.h"

#include <cmath>

#include "host/core/error.h"

namespace tessera {

Parameter make_parameter(Backend& be, const std::string& name, const Shape& shape) {
  Parameter p;
  p.name = name;
  p.value = be.empty(shape);
  p.grad = be.empty(shape);
  return p;
}

double clip_global_norm(Backend& be, const std::vector<Parameter*>& params, double max_norm) {
  std::vector<Tensor> host;
  double sq = 0;
  for (Parameter* p : params) {
    host.push_back(p->grad.is_host() ? p->grad : be.to_host(p->grad));
    const float* g = host.back().data<float>();
    for (int64_t i = 0; i < host.back().numel(); ++i) sq += static_cast<double>(g[i]) * g[i];
  }
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    const auto scale = static_cast<float>(max_norm / norm);
    for (size_t i = 0; i < params.size(); ++i) {
      float* g = host[i].data<float>();
      for (int64_t j = 0; j < host[i].numel(); ++j) g[j] *= scale;
      if (!params[i]->grad.is_host()) be.copy(host[i], params[i]->grad);
    }
  }
  return norm;
}

std::vector<std::pair<std::string, Tensor>> snapshot_parameters(
    Backend& be, const std::vector<Parameter*>& params) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (Parameter* p : params) out.emplace_back(p->name, be.to_host(p->value));
  return out;
}

void restore_parameters(Backend& be, const std::vector<Parameter*>& params,
                        const std::vector<std::pair<std::string, Tensor>>& values) {
  for (Parameter* p : params) {
    bool found = false;
    for (const auto& [name, t] : values) {
      if (name != p->name) continue;
      if (t.shape() != p->value.shape() || t.dtype() != p->value.dtype())
        TESSERA_THROW(Io, "model tensor '" << name << "' is " << t.describe() << ", expected "
                                           << dtype_name(p->value.dtype())
                                           << shape_str(p->value.shape()));
      be.copy(t, p->value);
      found = true;
    }
    if (!found) TESSERA_THROW(Io, "model artefact lacks tensor '" << p->name << "'");
  }
}

const Tensor& named_f32_weight(const std::map<std::string, Tensor>& weights,
                               const std::string& name, const Shape& shape) {
  auto it = weights.find(name);
  if (it == weights.end()) TESSERA_THROW(Io, "model weights lack parameter '" << name << "'");
  if (it->second.shape() != shape || it->second.dtype() != DType::F32)
    TESSERA_THROW(Io, "parameter '" << name << "' is " << it->second.describe()
                                    << ", the model expects f32" << shape_str(shape));
  return it->second;
}

double sum_on_host(Backend& be, const Tensor& t, int64_t n) {
  const Tensor h = be.to_host(t);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += h.data<float>()[i];
  return s;
}

}  // namespace tessera
