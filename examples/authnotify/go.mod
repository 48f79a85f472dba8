module github.com/dddkit/dddkit/examples/authnotify

go 1.26.8

require github.com/dddkit/dddkit v0.0.0

// The example always builds against the library in this repository.
replace github.com/dddkit/dddkit => ../..
