#include "host/dist/process_group.h"

#include <utility>

namespace tessera::dist {

namespace {

class LocalGroup final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int) override {}
  void barrier() override {}
};

std::unique_ptr<ProcessGroup>& installed() {
  static std::unique_ptr<ProcessGroup> group = make_local_group();
  return group;
}

}  // namespace

std::unique_ptr<ProcessGroup> make_local_group() {
  return std::make_unique<LocalGroup>();
}

ProcessGroup& process_group() {
  return *installed();
}

void set_process_group(std::unique_ptr<ProcessGroup> group) {
  installed() = group ? std::move(group) : make_local_group();
}

}  // namespace tessera::dist
