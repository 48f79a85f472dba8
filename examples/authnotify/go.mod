module github.com/dddkit/dddkit/examples/authnotify

go 1.26.8

require (
	github.com/dddkit/dddkit v0.0.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// The example always builds against the library in this repository.
replace github.com/dddkit/dddkit => ../..
