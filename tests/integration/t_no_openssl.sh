#!/usr/bin/env bash
# DESIGN.md section 8: OpenSSL's libssl/libcrypto must never be loaded beside
# BoringSSL. ldd resolves the whole dependency tree, so a library that drags
# OpenSSL in (libevent_openssl, libjwt0, libcurl) fails this test.
source "$(dirname "$0")/lib.sh"
gh_init no_openssl
n=0
while IFS= read -r bin; do
    n=$((n + 1))
    deps=$(ldd "$bin" 2>&1)
    check "$(basename "$bin") does not load OpenSSL 3" bash -c "! grep -qE 'lib(ssl|crypto)\\.so\\.3' <<<\"\$0\"" "$deps"
    case "$(basename "$bin")" in
    gatehouse|gatehousectl|gatehouse-bench)
        check_match "$(basename "$bin") loads BoringSSL" "android/libcrypto.so" "$deps" ;;
    esac
done < <(find "$GH_BUILD" -maxdepth 3 -type f -perm -u+x \( -name gatehouse -o -name gatehousectl \
           -o -name gatehouse-bench -o -name 'test_*' -o -name 'fuzz_*' \) -not -path '*/CMakeFiles/*')
check "found the binaries to inspect (>= 5)" test "$n" -ge 5
check "gatehouse binary present" test -x "$GATEHOUSE"
gh_finish
