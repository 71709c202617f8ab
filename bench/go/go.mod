module polyctx.dev/bench/go

go 1.21
