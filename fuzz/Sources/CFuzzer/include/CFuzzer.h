#include <stddef.h>
#include <stdint.h>

// Each fuzz target defines this (`@_cdecl("fleet_fuzz_one")`): one input, as libFuzzer
// hands it over. Returns 0.
int fleet_fuzz_one(const uint8_t *data, size_t size);

// Runs libFuzzer (compiler-rt, linked in by -sanitize=fuzzer) over `fleet_fuzz_one`.
// SwiftPM gives every executable target a main of its own, which calls this; the
// linker may also pull libFuzzer's own main in, which reaches the same target through
// `LLVMFuzzerTestOneInput`.
int fleet_fuzz_main(int argc, char **argv);
