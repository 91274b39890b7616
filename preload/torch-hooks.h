/* SPDX-License-Identifier: MIT */
/* The torch host hooks no symbol by name: it registers a RecordFunction observer with the
 * libtorch_cpu the process loaded (torch.cpp says why). Its list is empty. */
#ifndef ONNXHOOK_TORCH_HOOKS_H
#define ONNXHOOK_TORCH_HOOKS_H

#define TORCH_HOOKS(X)

#endif
