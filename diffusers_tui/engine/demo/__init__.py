"""The built-in demo models, the shapes dataset they learned, and the script that trains them."""
