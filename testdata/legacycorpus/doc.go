// Package legacycorpus is a legacy codebase written the way applications used the legacy DSPy
// API (github.com/mlbridge/mlbridge/adapters), kept to prove the migration on: several
// packages, renamed and dot imports, a local package that is also named dspy, the legacy types
// as struct fields, embedded fields, parameters, interface members and type-switch cases,
// method values and expressions, options built in loops, a feature-flag switch with a shadow
// mode, a half-migrated module, the package-level default pool, and a file behind a build tag.
//
// Its tests run against real workers, and cmd/transcript prints a deterministic transcript of
// results and errors. migrate's TestMigrateLegacyCorpus copies it, runs go fix and then
// mlbridge migrate --apply on the copy, and checks that it builds, vets, passes its tests and
// prints the same transcript after each step.
package legacycorpus
