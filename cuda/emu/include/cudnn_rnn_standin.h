#pragma once
// cuDNN stand-in, RNN part (see cudnn.h). Written by the cuDNN RNN stand-in.
#include "cudnn_core_standin.h"
