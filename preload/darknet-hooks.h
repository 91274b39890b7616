/* SPDX-License-Identifier: MIT */
/* The darknet symbols onnxhook interposes, listed once. */
#ifndef ONNXHOOK_DARKNET_HOOKS_H
#define ONNXHOOK_DARKNET_HOOKS_H

/* X(symbol, LAYER_TYPE): every layer function has the signature void (layer l, network net);
 * the type is the l.type the function is written for (darknet.h's LAYER_TYPE). */
#define DARKNET_HOOKS(X)                                                                         \
	X(forward_activation_layer, ACTIVE)                                                      \
	X(forward_avgpool_layer, AVGPOOL)                                                        \
	X(forward_batchnorm_layer, BATCHNORM)                                                    \
	X(forward_connected_layer, CONNECTED)                                                    \
	X(forward_convolutional_layer, CONVOLUTIONAL)                                            \
	X(forward_cost_layer, COST)                                                              \
	X(forward_crnn_layer, CRNN)                                                              \
	X(forward_crop_layer, CROP)                                                              \
	X(forward_deconvolutional_layer, DECONVOLUTIONAL)                                        \
	X(forward_detection_layer, DETECTION)                                                    \
	X(forward_dropout_layer, DROPOUT)                                                        \
	X(forward_gru_layer, GRU)                                                                \
	X(forward_iseg_layer, ISEG)                                                              \
	X(forward_l2norm_layer, L2NORM)                                                          \
	X(forward_local_layer, LOCAL)                                                            \
	X(forward_logistic_layer, LOGXENT)                                                       \
	X(forward_lstm_layer, LSTM)                                                              \
	X(forward_maxpool_layer, MAXPOOL)                                                        \
	X(forward_normalization_layer, NORMALIZATION)                                            \
	X(forward_region_layer, REGION)                                                          \
	X(forward_reorg_layer, REORG)                                                            \
	X(forward_rnn_layer, RNN)                                                                \
	X(forward_route_layer, ROUTE)                                                            \
	X(forward_shortcut_layer, SHORTCUT)                                                      \
	X(forward_softmax_layer, SOFTMAX)                                                        \
	X(forward_upsample_layer, UPSAMPLE)                                                      \
	X(forward_yolo_layer, YOLO)

/* X(symbol): void forward_network(network *net), a pass boundary (not a recorded op). */
#define DARKNET_NETWORK_HOOKS(X) X(forward_network)

/* Every symbol the darknet host hooks (the host registry's list). */
#define DARKNET_SYMBOLS(X) DARKNET_HOOKS(X) DARKNET_NETWORK_HOOKS(X)

#endif
