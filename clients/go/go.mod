module github.com/runctl/runctl/clients/go

go 1.19
