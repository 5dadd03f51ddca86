// Package arrowtext reads small query results (catalog lookups, plan
// descriptions, data-check counts) as text rows.
//
// It imports arrow-go only; anything may import it.
package arrowtext
