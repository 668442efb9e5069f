package worker

// PreloadOff says why Preload is not used on this system ("" where it is).
//
// A zygote forks after importing the bridge's framework, without exec. On macOS that is
// unsafe: Objective-C and CoreFoundation state (touched by imports such as urllib's proxy
// lookup via _scproxy, or Accelerate-backed numpy) is not fork-safe, and a forked child can
// crash or hang at its first use — CPython made multiprocessing's default "spawn" on macOS
// for this reason. macOS also has no AF_UNIX SOCK_SEQPACKET for the zygote's control channel.
// Workers start directly instead: each pays its own import, but is what a Mac runs safely.
const PreloadOff = "fork after import is not safe on macOS (Objective-C/CoreFoundation fork safety); each worker starts its own interpreter"
