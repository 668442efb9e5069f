//go:build !linux && !darwin

package mlbridge

import "errors"

// rssPerCall: no reading here, so nothing to check per call.
const rssPerCall = false

// processRSS has no implementation on this system: MaxRSS never triggers and Stats reports
// RSS 0.
func processRSS(int) (int64, error) { return 0, errors.ErrUnsupported }
