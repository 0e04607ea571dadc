#pragma once
// Stand-in for cuDNN's cudnn.h in the emulation build (cuda/emu/README.md): the slice of cuDNN
// tessera calls, each entry point a validating stand-in (cuda/emu/standins/cudnn_*.cpp).
//   cudnn_core_standin.h  handle, status, data types, tensor/filter/convolution/pooling
//                         descriptors, convolution, pooling, batch normalisation
//   cudnn_rnn_standin.h   RNN, RNN data and dropout descriptors, the v8 RNN calls
#include "cudnn_core_standin.h"
#include "cudnn_rnn_standin.h"
