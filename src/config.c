/* SPDX-License-Identifier: MIT */
/* ONNXHOOK_* environment variables: parsing and output-path templates. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxhook.h"

static const char *get(char *(*getenv_fn)(const char *), const char *name)
{
	const char *v = getenv_fn(name);

	return v && *v ? v : NULL; /* empty means unset */
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi || s[0] == '+' || s[0] == ' ')
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "0") && strcmp(v, "1"))
		return -EINVAL;
	*out = v[0] == '1';
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

static int bad(char *err, size_t errlen, const char *name, const char *value, const char *accepted)
{
	snprintf(err, errlen, "invalid %s='%s': expected %s", name, value, accepted);
	return -EINVAL;
}

/* A file path template: validated now, not at exit when it is too late to say so. */
static int check_path(const char *v, char *err, size_t errlen, const char *name)
{
	char check[4096];

	if (strlen(v) >= sizeof(check))
		return bad(err, errlen, name, "...", "a path shorter than 4096 bytes");
	if (onnxhook_path_expand(v, 1, "x", check, sizeof(check)) < 0)
		return bad(err, errlen, name, v,
			   "a path where % is followed by p (pid), e (executable name) or %");
	if (v[strlen(v) - 1] == '/')
		return bad(err, errlen, name, v, "a file path, not a directory");
	return 0;
}

int onnxhook_config_read(struct onnxhook_config *cfg, char *(*getenv_fn)(const char *), char *err,
			 size_t errlen)
{
	const char *v;
	long n;

	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->output, "%e.%p.onnx");
	cfg->log = ONNXHOOK_LOG_INFO;
	cfg->opset = 17;
	cfg->pass = 1;
	cfg->stack = true;
	cfg->provenance = true;
	if (errlen)
		err[0] = '\0';

	if ((v = get(getenv_fn, "ONNXHOOK_LOG"))) {
		if (!strcmp(v, "info"))
			cfg->log = ONNXHOOK_LOG_INFO;
		else if (!strcmp(v, "quiet"))
			cfg->log = ONNXHOOK_LOG_QUIET;
		else if (!strcmp(v, "debug"))
			cfg->log = ONNXHOOK_LOG_DEBUG;
		else
			return bad(err, errlen, "ONNXHOOK_LOG", v, "info, quiet or debug");
	}
	if ((v = get(getenv_fn, "ONNXHOOK_OUTPUT"))) {
		if ((n = check_path(v, err, errlen, "ONNXHOOK_OUTPUT")) < 0)
			return (int)n;
		strcpy(cfg->output, v);
		cfg->output_explicit = true;
	}
	if ((v = get(getenv_fn, "ONNXHOOK_PASS"))) {
		if (!strcmp(v, "all"))
			cfg->pass = ONNXHOOK_PASS_ALL;
		else if (parse_int(v, 1, 1000000000, &n) == 0)
			cfg->pass = (unsigned)n;
		else
			return bad(err, errlen, "ONNXHOOK_PASS", v, "a pass number from 1, or all");
	}
	static const struct {
		const char *name;
		size_t offset;
	} bools[] = {
		{"ONNXHOOK_DEBUG_OUTPUTS", offsetof(struct onnxhook_config, debug_outputs)},
		{"ONNXHOOK_DUMP_ON_SIGNAL", offsetof(struct onnxhook_config, dump_on_signal)},
		{"ONNXHOOK_DUMP_ON_CRASH", offsetof(struct onnxhook_config, dump_on_crash)},
		{"ONNXHOOK_DUMP_AFTER_PASS", offsetof(struct onnxhook_config, dump_after_pass)},
		{"ONNXHOOK_STACK", offsetof(struct onnxhook_config, stack)},
		{"ONNXHOOK_TEST_DATA", offsetof(struct onnxhook_config, test_data)},
		{"ONNXHOOK_LAYER_DATA", offsetof(struct onnxhook_config, layer_data)},
		{"ONNXHOOK_PROVENANCE", offsetof(struct onnxhook_config, provenance)},
	}, limits[] = {
		{"ONNXHOOK_MAX_NODES", offsetof(struct onnxhook_config, max_nodes)},
		{"ONNXHOOK_MAX_BYTES", offsetof(struct onnxhook_config, max_bytes)},
	};
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		if ((v = get(getenv_fn, bools[i].name)) &&
		    parse_bool(v, (bool *)((char *)cfg + bools[i].offset)) < 0)
			return bad(err, errlen, bools[i].name, v, "0 or 1");
	}
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if ((v = get(getenv_fn, limits[i].name)) &&
		    parse_u64(v, (uint64_t *)((char *)cfg + limits[i].offset)) < 0)
			return bad(err, errlen, limits[i].name, v, "a positive whole number");
	}
	if ((v = get(getenv_fn, "ONNXHOOK_BATCH"))) {
		if (strcmp(v, "static") && strcmp(v, "dynamic"))
			return bad(err, errlen, "ONNXHOOK_BATCH", v, "static or dynamic");
		cfg->dynamic_batch = v[0] == 'd';
	}
	if ((v = get(getenv_fn, "ONNXHOOK_EXTERNAL_DATA"))) {
		if (!strcmp(v, "auto"))
			cfg->external_data = ONNXHOOK_EXTERNAL_AUTO;
		else if (!strcmp(v, "always"))
			cfg->external_data = ONNXHOOK_EXTERNAL_ALWAYS;
		else if (!strcmp(v, "never"))
			cfg->external_data = ONNXHOOK_EXTERNAL_NEVER;
		else
			return bad(err, errlen, "ONNXHOOK_EXTERNAL_DATA", v, "auto, always or never");
	}
	static const struct {
		const char *name;
		size_t offset;
	} paths[] = {
		{"ONNXHOOK_DOT", offsetof(struct onnxhook_config, dot)},
		{"ONNXHOOK_REPORT", offsetof(struct onnxhook_config, report)},
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if ((v = get(getenv_fn, paths[i].name)) &&
		    (n = check_path(v, err, errlen, paths[i].name)) < 0)
			return (int)n;
		if (v)
			strcpy((char *)cfg + paths[i].offset, v);
	}
	/* Reference libraries for the locator, path[:path...]: their files are judged where they
	 * are used (the command refuses a missing one; the preload says so and skips it). */
	if ((v = get(getenv_fn, "ONNXHOOK_HOST_CODE"))) {
		if (strlen(v) >= sizeof(cfg->host_code))
			return bad(err, errlen, "ONNXHOOK_HOST_CODE", "...", "paths shorter than 4096 bytes in all");
		strcpy(cfg->host_code, v);
	}
	if ((v = get(getenv_fn, "ONNXHOOK_OPSET"))) {
		if (parse_int(v, 13, 17, &n) < 0)
			return bad(err, errlen, "ONNXHOOK_OPSET", v, "an opset from 13 to 17");
		cfg->opset = (int)n;
	}
	/* Every layer's result goes in the test data set: there is no set without it. */
	if (cfg->layer_data)
		cfg->test_data = true;
	return 0;
}

int onnxhook_path_expand(const char *tmpl, pid_t pid, const char *exe, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *p = tmpl; *p; p++) {
		char num[24];
		const char *add = NULL;

		if (*p != '%') {
			if (o + 1 >= outlen)
				return -ENAMETOOLONG;
			out[o++] = *p;
			continue;
		}
		switch (*++p) {
		case 'p':
			snprintf(num, sizeof(num), "%ld", (long)pid);
			add = num;
			break;
		case 'e':
			add = exe;
			break;
		case '%':
			add = "%";
			break;
		default: /* unknown, or a trailing % */
			return -EINVAL;
		}
		size_t n = strlen(add);
		if (o + n >= outlen)
			return -ENAMETOOLONG;
		memcpy(out + o, add, n);
		o += n;
	}
	if (o >= outlen)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return 0;
}
