/* SPDX-License-Identifier: MIT */
/* The locator (locate.h) in a build without its decoder (Zydis): it finds nothing, and says so. */
#include <errno.h>
#include <stdio.h>

#include "locate.h"

const char *onnxhook_found_status_name(enum onnxhook_found_status status)
{
	return status == ONNXHOOK_NOT_FOUND ? "not found" : "?";
}

uint64_t onnxhook_locate_token(const uint8_t *code, size_t len, unsigned *ilen)
{
	*ilen = 0;
	return 0;
}

int onnxhook_locate_code(const uint8_t *ref, uint64_t ref_base, size_t ref_len, const uint8_t *target,
			 uint64_t target_base, size_t target_len, const struct onnxhook_locate_func *ref_funcs,
			 size_t n, struct onnxhook_found *out)
{
	return -ENOSYS;
}

int onnxhook_locate_check(const char *path, char *err, size_t errlen)
{
	return onnxhook_locate(NULL, path, NULL, 0, 0, NULL, err, errlen);
}

int onnxhook_locate(const char *ref_path, const char *target_path, const char *const *names, size_t n,
		    unsigned flags, struct onnxhook_found *out, char *err, size_t errlen)
{
	if (errlen)
		snprintf(err, errlen, "this onnxhook was built without the x86-64 decoder (Zydis): no "
				      "function is located by its code");
	return -ENOSYS;
}

int onnxhook_locate_key_add(struct onnxhook_locate_key **key, const char *ref_path, const char *const *names,
			    size_t n, char *err, size_t errlen)
{
	return onnxhook_locate(ref_path, NULL, NULL, 0, 0, NULL, err, errlen);
}

void onnxhook_locate_key_free(struct onnxhook_locate_key *key)
{
}

bool onnxhook_locate_loaded_may_hold(const void *phdr, unsigned phnum, uintptr_t bias, const char *path,
				     const struct onnxhook_locate_key *key)
{
	return false;
}
