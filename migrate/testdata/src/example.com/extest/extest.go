package extest

// dspy is a package-level name: a file of this package cannot import dspy under that name.
var dspy = "bridge"

// Version is here so that the package uses dspy.
var Version = dspy
