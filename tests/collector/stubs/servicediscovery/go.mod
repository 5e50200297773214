// Stands in for github.com/aws/aws-sdk-go-v2/service/servicediscovery, which
// the Go module proxy refuses (403) at the version the loadbalancing exporter
// needs. Only its AWS Cloud Map resolver uses it; our configs use the static
// and DNS resolvers, so the API surface that resolver compiles against is
// enough, and a Cloud Map lookup fails with a clear error instead.
module github.com/aws/aws-sdk-go-v2/service/servicediscovery

go 1.25

require github.com/aws/aws-sdk-go-v2 v1.46.0
