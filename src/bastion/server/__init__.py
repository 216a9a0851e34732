"""The server assembly: the context object, the application, bootstrap and the demo."""
