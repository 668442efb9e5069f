//go:build !unix

package pyruntime

import "io/fs"

// ownedByMe: the temporary directory is per user on Windows; there is no owner to compare.
func ownedByMe(fs.FileInfo) bool { return true }
