//! 1C as seen from outside: the exchange client and the HTTP-service stand-in.
#![forbid(unsafe_code)]
