// Package dspy is another package named dspy.
package dspy

type Settings struct{ Temperature float64 }
