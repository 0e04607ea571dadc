#pragma once
// cuDNN stand-in, core part (see cudnn.h). Written by the cuDNN core stand-in.
