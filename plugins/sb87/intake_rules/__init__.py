"""What a request may contain: field rules, validation, the trigger form, and refusals in words."""
