"""What the commands print on a terminal: each command's text, from the documents and results below."""
