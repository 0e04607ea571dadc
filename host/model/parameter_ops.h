#pragma once
// What the models built from a list of Parameters (host/model/parameter.h) do alike, whatever
// the task: allocate a named parameter, clip the gradients by their global norm, copy the
// weights out (a snapshot) and back (restore), and add up a per-example loss on the host.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/parameter.h"

namespace tessera {

// A parameter `name` of `shape` on `backend`, value and gradient allocated (not initialised).
Parameter make_parameter(Backend& backend, const std::string& name, const Shape& shape);

// Global-norm clipping: scales every gradient by min(1, max_norm / ||all gradients||_2) (none
// when max_norm is 0). Returns the norm before clipping. Computed on the host (a copy for device
// tensors).
double clip_global_norm(Backend& backend, const std::vector<Parameter*>& params, double max_norm);

// Every parameter's value as a host tensor, by name, in `params` order.
std::vector<std::pair<std::string, Tensor>> snapshot_parameters(
    Backend& backend, const std::vector<Parameter*>& params);
// Copies `values` into the parameters of the same names: Io error when one is missing or its
// shape or dtype differs.
void restore_parameters(Backend& backend, const std::vector<Parameter*>& params,
                        const std::vector<std::pair<std::string, Tensor>>& values);

// weights[name], checked to be f32 of `shape`: Io error "model weights lack parameter ..." when
// it is missing, "parameter ... is ..., the model expects f32[...]" when it differs.
const Tensor& named_f32_weight(const std::map<std::string, Tensor>& weights,
                               const std::string& name, const Shape& shape);

// The sum of the first `n` elements of the f32 tensor `t` (a per-example loss), on the host.
double sum_on_host(Backend& backend, const Tensor& t, int64_t n);

}  // namespace tessera
