package infer

import (
	"errors"
	"fmt"
)

// ErrUnsupported marks model features this build does not evaluate (an
// objective, categorical splits, linear trees); the message names it.
var ErrUnsupported = errors.New("unsupported")

// ErrCorrupt marks model files that cannot be parsed or are inconsistent.
var ErrCorrupt = errors.New("corrupt model")

// Trees is a tree ensemble evaluated on a dense float32 feature matrix.
// Implementations are immutable after loading and safe for concurrent use.
type Trees interface {
	// Features are the feature names stored in the model, in column order
	// ("f0", "f1", ... when the model has none).
	Features() []string
	// Outputs is the number of values per row (1, or the class count of a
	// multi-class model).
	Outputs() int
	// Predict scores n rows of x (row-major, n*len(Features()) values;
	// NaN means missing) into out (n*Outputs() values), after the model's
	// objective transform (probabilities for logistic/softmax objectives).
	Predict(x []float32, n int, out []float64) error
	// Margin is Predict without the objective transform (raw scores),
	// n*MarginOutputs() values.
	Margin(x []float32, n int, out []float64) error
	// MarginOutputs is the number of raw scores per row: Outputs(), except
	// for objectives that turn several scores into one value (multi:softmax
	// predicts a class index from one score per class).
	MarginOutputs() int
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}
