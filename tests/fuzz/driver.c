/* SPDX-License-Identifier: MIT */
/* Runs the fuzz target without libFuzzer: seeded random inputs for a bounded count or time
 * (the test suite), or the files named on the command line (a corpus or a crash to replay).
 * Usage: fuzz-driver [-n COUNT] [-t SECONDS] [-s SEED] [FILE...] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	long count = 20000, seconds = 20;
	uint64_t seed = 1;
	int opt;

	while ((opt = getopt(argc, argv, "n:t:s:")) != -1) {
		if (opt == 'n')
			count = atol(optarg);
		else if (opt == 't')
			seconds = atol(optarg);
		else if (opt == 's')
			seed = strtoull(optarg, NULL, 10) | 1;
		else
			return 2;
	}
	for (int i = optind; i < argc; i++) { /* replay files */
		static uint8_t buf[1 << 16];
		FILE *f = fopen(argv[i], "rb");
		if (!f)
			return 2;
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	if (optind < argc)
		return 0;
	time_t end = time(NULL) + seconds;
	uint8_t buf[2048];
	long done = 0;
	for (; done < count && time(NULL) < end; done++) {
		size_t n = next(&seed) % sizeof(buf);
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)next(&seed);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("fuzz-driver: %ld inputs, no failure\n", done);
	return 0;
}
