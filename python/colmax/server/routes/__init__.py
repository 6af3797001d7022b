"""The API's routes, one module per resource: meta (health, indexes), search (search, explain),
documents (add, delete, get), encode, page (the search page and its files)."""
