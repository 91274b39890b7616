// SPDX-License-Identifier: MIT
// A C++ program that links libtorch and runs a TorchScript file saved by Python: what the torch
// host traces without any Python in the process.
//
// usage: torchscript-run MODEL.pt OUTDIR [--runs N] [--shape 1x3x16x16] [--seed S]
// Each forward k = 1..N runs on its own random input; OUTDIR/input_<k>.bin and output_<k>.bin get
// them as raw float32.
#include <torch/script.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static bool write_raw(const std::string &path, const at::Tensor &t)
{
	at::Tensor c = t.contiguous();
	FILE *f = std::fopen(path.c_str(), "wb");
	if (!f)
		return false;
	size_t n = (size_t)c.numel();
	bool ok = std::fwrite(c.data_ptr<float>(), sizeof(float), n, f) == n;
	return std::fclose(f) == 0 && ok;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		std::fprintf(stderr, "usage: torchscript-run MODEL.pt OUTDIR [--runs N] [--shape 1x3x16x16] [--seed S]\n");
		return 2;
	}
	int runs = 2;
	long seed = 1;
	std::vector<int64_t> shape = {1, 3, 16, 16};
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!std::strcmp(argv[i], "--runs")) {
			runs = std::atoi(argv[i + 1]);
		} else if (!std::strcmp(argv[i], "--seed")) {
			seed = std::atol(argv[i + 1]);
		} else if (!std::strcmp(argv[i], "--shape")) {
			shape.clear();
			for (char *p = argv[i + 1]; *p;) {
				shape.push_back(std::strtoll(p, &p, 10));
				if (*p == 'x')
					p++;
				else if (*p)
					return std::fprintf(stderr, "torchscript-run: bad --shape\n"), 2;
			}
		} else {
			std::fprintf(stderr, "torchscript-run: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	torch::jit::script::Module m;
	try {
		m = torch::jit::load(argv[1]);
	} catch (const c10::Error &e) {
		std::fprintf(stderr, "torchscript-run: cannot load %s: %s\n", argv[1], e.what_without_backtrace());
		return 1;
	}
	m.eval();
	torch::manual_seed(seed);
	torch::NoGradGuard no_grad;
	for (int k = 1; k <= runs; k++) {
		at::Tensor x = torch::randn(shape);
		at::Tensor y = m.forward({x}).toTensor();
		std::string dir = argv[2];
		if (!write_raw(dir + "/input_" + std::to_string(k) + ".bin", x) ||
		    !write_raw(dir + "/output_" + std::to_string(k) + ".bin", y)) {
			std::fprintf(stderr, "torchscript-run: cannot write to %s\n", argv[2]);
			return 1;
		}
	}
	std::printf("torchscript-run: %d forward(s)\n", runs);
	return 0;
}
