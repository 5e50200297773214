// Package servicediscovery is a compile-time stand-in: see go.mod.
package servicediscovery

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
)

// Options mirrors the SDK's client options type; nothing reads it.
type Options struct{}

// Client never reaches AWS.
type Client struct{}

// NewFromConfig matches the SDK's constructor signature.
func NewFromConfig(cfg aws.Config, optFns ...func(*Options)) *Client { return &Client{} }

type DiscoverInstancesInput struct {
	NamespaceName      *string
	ServiceName        *string
	HealthStatus       types.HealthStatusFilter
	MaxResults         *int32
	OptionalParameters map[string]string
	OwnerAccount       *string
	QueryParameters    map[string]string
}

type DiscoverInstancesOutput struct {
	Instances []types.HttpInstanceSummary
}

var errNotBuilt = errors.New("otelcol-tgo: the AWS Cloud Map resolver is not built in (use the static or dns resolver)")

// DiscoverInstances always fails: see go.mod.
func (c *Client) DiscoverInstances(ctx context.Context, params *DiscoverInstancesInput, optFns ...func(*Options)) (*DiscoverInstancesOutput, error) {
	return nil, errNotBuilt
}
