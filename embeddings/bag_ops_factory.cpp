#include "embeddings/bag_ops.h"

namespace tessera::emb {

#if TESSERA_EMBEDDINGS_DEVICE
std::unique_ptr<BagOps> make_device_bag_ops(Backend& backend);    // device_bag_ops.cpp
void order_device_streams(Backend& consumer, Backend& producer);  // device_bag_ops.cpp
#endif

void order_after(Backend& consumer, Backend& producer) {
  if (consumer.device().kind == DeviceKind::Host || producer.device().kind == DeviceKind::Host)
    return;
#if TESSERA_EMBEDDINGS_DEVICE
  order_device_streams(consumer, producer);
#else
  TESSERA_THROW(Backend, "ordering " << consumer.name() << " after " << producer.name()
                                     << ": this build has no device embedding ops");
#endif
}

std::unique_ptr<BagOps> make_bag_ops(Backend& backend) {
  if (backend.device().kind == DeviceKind::Host) return make_host_bag_ops();
#if TESSERA_EMBEDDINGS_DEVICE
  return make_device_bag_ops(backend);
#else
  TESSERA_THROW(Backend, "embedding bags on "
                             << backend.name()
                             << ": this build has no device embedding ops "
                                "(configure with CUDA or TESSERA_CUDA_EMULATION=ON)");
#endif
}

}  // namespace tessera::emb
