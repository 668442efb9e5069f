package pyenv

import "testing"

func TestPythonSetupRequirementSatisfied(t *testing.T) {
	cases := []struct {
		req, version string
		want         bool
	}{
		{"scikit-learn>=1.5,<2", "1.7.2", true},
		{"scikit-learn>=1.5,<2", "1.4.2", false},
		{"scikit-learn>=1.5,<2", "2.0.0", false},
		{"dspy>=3.4,<4", "3.4.0rc1", false},
		{"dspy>=3.4,<4", "3.10", true},
		{"msgpack>=1.0", "1.1.1.post1", true},
		{"numpy>=2", "1.26.4", false},
		{"llama-cpp-python>=0.3.16,<0.4", "0.3.16", true},
		{"x==1.2.*", "1.2.9", true},
		{"x==1.2.*", "1.3", false},
		{"x!=1.2.*", "1.3", true},
		{"x~=1.4.2", "1.4.9", true},
		{"x~=1.4.2", "1.5.0", false},
		{"x[extra] (>=1)", "1.0", true},
		{"x", "0.0.1", true},
	}
	for _, c := range cases {
		r, err := parseRequirement(c.req)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.satisfiedBy(c.version); got != c.want {
			t.Errorf("%s with %s installed: satisfied %v, want %v", c.req, c.version, got, c.want)
		}
	}
	if _, err := parseRequirement(">=1"); err == nil {
		t.Error("a requirement without a name parsed")
	}
}

func TestPythonSetupMarkers(t *testing.T) {
	env := map[string]string{"sys_platform": "linux", "platform_python_implementation": "CPython", "python_version": "3.11"}
	cases := []struct {
		marker string
		want   bool
	}{
		{`sys_platform != "win32" and platform_python_implementation == "CPython"`, true},
		{`sys_platform == "win32" or platform_python_implementation == 'PyPy'`, false},
		{`python_version >= "3.9"`, true},
		{`python_version < "3.12" and (sys_platform == "darwin" or sys_platform == "linux")`, true},
		{`"linux" in sys_platform`, true},
		{`sys_platform not in "win32 cygwin"`, true},
	}
	for _, c := range cases {
		got, err := evalMarker(c.marker, env)
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.marker, got, err, c.want)
		}
	}
	if _, err := evalMarker(`platform_release >= "5"`, env); err == nil {
		t.Error("a marker naming a value the probe did not report evaluated")
	}
}
