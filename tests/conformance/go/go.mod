module polyctx.dev/conformance/go

go 1.21
