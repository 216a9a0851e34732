"""The token endpoint's grants, one module per specification."""
