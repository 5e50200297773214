// Package types holds the few Cloud Map types the loadbalancing exporter names.
package types

type HealthStatusFilter string

const (
	HealthStatusFilterHealthy          HealthStatusFilter = "HEALTHY"
	HealthStatusFilterUnhealthy        HealthStatusFilter = "UNHEALTHY"
	HealthStatusFilterAll              HealthStatusFilter = "ALL"
	HealthStatusFilterHealthyOrElseAll HealthStatusFilter = "HEALTHY_OR_ELSE_ALL"
)

type HttpInstanceSummary struct {
	Attributes    map[string]string
	HealthStatus  string
	InstanceId    *string
	NamespaceName *string
	ServiceName   *string
}
