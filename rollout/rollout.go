// Package rollout switches migration sites between the legacy and the new API with an
// OpenFeature flag: per call site or module (the evaluation's targeting key), with any
// OpenFeature provider, and flipping the flag back is the rollback.
//
// Without a provider configured by the application, EnvProvider reads the flag from the
// environment; OpenFeature's own no-op default would always answer "legacy".
package rollout

import (
	"context"
	"os"
	"strings"

	"github.com/open-feature/go-sdk/openfeature"
)

// Flag is the boolean flag that selects the new API (true) over the legacy one.
const Flag = "mlbridge.use-new-api"

// Switch decides which path a migration site takes.
type Switch struct {
	// Client evaluates the flag (default: openfeature.NewDefaultClient, the application's
	// provider).
	Client *openfeature.Client
	// Flag is the flag's key (default Flag).
	Flag string
}

// UseNew reports whether site (a call site or module name, e.g. "billing.summarize") takes the
// new path. Evaluation errors choose the legacy path: a broken flag system must not move
// traffic.
func (s Switch) UseNew(ctx context.Context, site string) bool {
	c := s.Client
	if c == nil {
		c = openfeature.NewDefaultClient()
	}
	flag := s.Flag
	if flag == "" {
		flag = Flag
	}
	v, err := c.BooleanValue(ctx, flag, false, openfeature.NewEvaluationContext(site, map[string]any{"site": site}))
	return err == nil && v
}

// EnvProvider is an OpenFeature provider for boolean flags set in environment variables. Flag
// "mlbridge.use-new-api" for site "billing.summarize" reads MLBRIDGE_USE_NEW_API_BILLING_SUMMARIZE,
// then MLBRIDGE_USE_NEW_API; values true/1/on or false/0/off. It is read on every
// evaluation, so changing the environment of a running process (or a test) flips the path.
type EnvProvider struct{ openfeature.NoopProvider }

// Metadata names the provider.
func (EnvProvider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "mlbridge-env"} }

// BooleanEvaluation resolves a flag from the environment.
func (EnvProvider) BooleanEvaluation(_ context.Context, flag string, def bool, fc openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	base := envName(flag)
	names := []string{base}
	if site, ok := fc[openfeature.TargetingKey].(string); ok && site != "" {
		names = []string{base + "_" + envName(site), base}
	}
	for _, n := range names {
		switch strings.ToLower(os.Getenv(n)) {
		case "true", "1", "on":
			return boolDetail(true, n)
		case "false", "0", "off":
			return boolDetail(false, n)
		}
	}
	return openfeature.BoolResolutionDetail{Value: def,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason}}
}

func boolDetail(v bool, from string) openfeature.BoolResolutionDetail {
	return openfeature.BoolResolutionDetail{Value: v, ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
		Reason: openfeature.StaticReason, Variant: from}}
}

func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, s)
}
