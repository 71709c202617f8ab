module polyctx.demo/gobackend

go 1.21
