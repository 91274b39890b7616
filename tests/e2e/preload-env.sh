# SPDX-License-Identifier: MIT
# Sourced by the e2e scripts: sets $hook_preload, the LD_PRELOAD value for the app commands. A
# preload built with ASan must follow libasan.so (ASan insists on coming first), and the apps
# leak at exit on purpose.
# usage: . preload-env.sh PRELOAD
hook_preload=$1
asan_lib=$(ldd "$1" 2>/dev/null | awk '/libasan\.so/ { print $3; exit }')
if [ -n "$asan_lib" ]; then
	hook_preload=$asan_lib:$1
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
fi
