//go:build !legacyextra

package tagged

import "context"

const enabled = false

func classify(context.Context, string, string) (string, error) { return "", nil }
