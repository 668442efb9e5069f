package pyenv

import (
	"os"
	"runtime"
	"strings"
)

// withCMakeArgs sets CMAKE_ARGS for building llama-cpp-python (no wheel on PyPI: it compiles
// llama.cpp), unless the caller set it. Not -march=native: on VMs whose CPU reports AMX
// without the kernel enabling it, a native build dies with SIGILL. AVX2, FMA, F16C and BMI2
// when the CPU has them (a generic build runs the model several times slower).
func withCMakeArgs(env []string) []string {
	if os.Getenv("CMAKE_ARGS") != "" {
		return env
	}
	args := "-DGGML_NATIVE=OFF"
	if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "386") {
		if cpuHas("avx2", "fma", "f16c", "bmi2") {
			args += " -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
		}
	}
	return append(env, "CMAKE_ARGS="+args)
}

// cpuHas reports whether /proc/cpuinfo lists every flag.
func cpuHas(flags ...string) bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		have := map[string]bool{}
		for _, f := range strings.Fields(value) {
			have[f] = true
		}
		for _, f := range flags {
			if !have[f] {
				return false
			}
		}
		return true
	}
	return false
}
